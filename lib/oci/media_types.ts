/**
 * OCI and Docker media types, and what each means for import.
 *
 * @module
 */

/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image config: the only config type whose layers are a container filesystem. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker manifest list (the Docker index). */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image manifest, schema 2. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

/** Layer compression. */
export type Compression = "none" | "gzip" | "zstd";

/**
 * Tar layer media types and their compression. composefs-rs treats Docker's
 * `rootfs.diff.tar.gzip` as a non-tar blob, which breaks filesystem generation for layouts
 * with Docker media types (cli-oci-cstor §5, §8.10); we treat it as the gzip tar it is.
 */
const TAR_LAYER_TYPES: Readonly<Record<string, Compression>> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
};

/** The compression of a tar layer media type, or `undefined` when it is not a tar layer. */
export function tarLayerCompression(mediaType: string): Compression | undefined {
  return Object.hasOwn(TAR_LAYER_TYPES, mediaType) ? TAR_LAYER_TYPES[mediaType] : undefined;
}

/** True for a config media type describing a container image (layers form a rootfs). */
export function isImageConfig(mediaType: string): boolean {
  return mediaType === OCI_CONFIG || mediaType === DOCKER_CONFIG;
}

/** True for an index or manifest-list media type. */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/** True for an image manifest media type. */
export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
