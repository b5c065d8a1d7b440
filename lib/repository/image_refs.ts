/**
 * Objects referenced by a composefs EROFS image, found without a full EROFS reader.
 *
 * A composefs image names each external file's object in a `trusted.overlay.redirect` xattr
 * whose value is `/XX/<rest>` (repository-format §4.8). Composefs images are never compressed,
 * so every such value appears verbatim, contiguously, in the image bytes. Scanning for that
 * exact shape finds every referenced object; a file name or inline data that happens to look
 * like one can only add a false positive, which keeps an object alive (GC stays safe) or is
 * reported as a reference. When `lib/erofs/` gains a reader, GC and fsck should switch to it.
 *
 * @module
 */

import { digestSize, type HashAlgorithm } from "../fsverity/algorithm.ts";
import { fromHex } from "./object_id.ts";

function isLowerHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66);
}

/** The distinct object IDs that `image` redirects to, in first-appearance order. */
export function scanImageObjectRefs(image: Uint8Array, alg: HashAlgorithm): Uint8Array[] {
  const n = digestSize(alg);
  const restLen = 2 * (n - 1);
  const valueLen = 1 + 2 + 1 + restLen; // "/XX/<rest>"
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const dec = new TextDecoder("latin1");
  for (let i = 0; i + valueLen <= image.length; i++) {
    if (image[i] !== 0x2f || image[i + 3] !== 0x2f) continue;
    if (!isLowerHex(image[i + 1]) || !isLowerHex(image[i + 2])) continue;
    let ok = true;
    for (let j = i + 4; j < i + valueLen; j++) {
      if (!isLowerHex(image[j])) {
        ok = false;
        break;
      }
    }
    // A longer hex run is not a name of this algorithm (e.g. a sha512 name in a sha256 scan).
    if (!ok || (i + valueLen < image.length && isLowerHex(image[i + valueLen]))) continue;
    const hex = dec.decode(image.subarray(i + 1, i + 3)) +
      dec.decode(image.subarray(i + 4, i + valueLen));
    if (!seen.has(hex)) {
      seen.add(hex);
      out.push(fromHex(hex, n));
    }
    i += valueLen - 1;
  }
  return out;
}
