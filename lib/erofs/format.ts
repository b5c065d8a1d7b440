/**
 * EROFS and composefs on-disk constants (spec erofs-format.md §2).
 *
 * @module
 */

/** EROFS block size: composefs images always use 4 KiB blocks. */
export const BLOCK_SIZE = 4096;
/** log2 of {@link BLOCK_SIZE}, stored in the superblock. */
export const BLOCK_BITS = 12;
/** Inodes start on 32-byte slots; a nid is the byte offset divided by this. */
export const INODE_SLOT_SIZE = 32;
/** A directory's tail is kept inline only up to half a block; larger tails get a block. */
export const MAX_INLINE_DIR_TAIL = 2048;
/** Byte offset of the EROFS superblock (the first 1 KiB holds the composefs header). */
export const SUPERBLOCK_OFFSET = 1024;
/** Size of the EROFS superblock. */
export const SUPERBLOCK_SIZE = 128;
/** Size of a compact inode header. */
export const COMPACT_INODE_SIZE = 32;
/** Size of an extended inode header. */
export const EXTENDED_INODE_SIZE = 64;
/** Size of the inode xattr body header (`h_name_filter`, `h_shared_count`, reserved). */
export const XATTR_BODY_HEADER_SIZE = 12;
/** Size of one xattr entry header (`e_name_len`, `e_name_index`, `e_value_size`). */
export const XATTR_ENTRY_HEADER_SIZE = 4;
/** Size of a directory entry header (`nid` u64, `nameoff` u16, `file_type` u8, reserved). */
export const DIRENT_SIZE = 12;
/** Chunk index value meaning "no block": a hole (EROFS_NULL_ADDR). */
export const NULL_ADDR = 0xffffffff;
/** Number of chunk indexes written when a chunk table is promoted to its own block. */
export const MAX_NONINLINE_CHUNKS = 1024;

/** composefs header magic (`9a 62 78 d0` on disk). */
export const COMPOSEFS_MAGIC = 0xd078629a;
/** composefs header `version` field (the EROFS-in-composefs format version). */
export const COMPOSEFS_HEADER_VERSION = 1;
/** Header flag: some inode carries a POSIX ACL xattr. */
export const COMPOSEFS_FLAGS_HAS_ACL = 1;
/** EROFS superblock magic. */
export const EROFS_MAGIC = 0xe0f5e1e2;
/** Superblock feature_compat bit: per-inode mtime is meaningful. */
export const FEATURE_COMPAT_MTIME = 2;
/** Superblock feature_compat bit: xattr bloom filter in inode xattr headers. */
export const FEATURE_COMPAT_XATTR_FILTER = 4;
/** Superblock feature_compat bit: superblock checksum (never written by composefs). */
export const FEATURE_COMPAT_SB_CHKSUM = 1;
/** Seed base of the xattr name filter hash (xxh32(suffix, seed + prefix index)). */
export const XATTR_FILTER_SEED = 0x25bbe08f;

/** Data layouts (low bits of i_format shifted by 1). */
export const LAYOUT_FLAT_PLAIN = 0;
/** Data in blocks plus an inline tail after the inode. */
export const LAYOUT_FLAT_INLINE = 2;
/** Chunk-based file (chunk indexes after the inode). */
export const LAYOUT_CHUNK_BASED = 4;

/** i_format bit 0: extended (64-byte) inode. */
export const INODE_EXTENDED = 1;

/** File-type bits of st_mode. */
export const S_IFMT = 0o170000;
/** Socket. */
export const S_IFSOCK = 0o140000;
/** Symlink. */
export const S_IFLNK = 0o120000;
/** Regular file. */
export const S_IFREG = 0o100000;
/** Block device. */
export const S_IFBLK = 0o060000;
/** Directory. */
export const S_IFDIR = 0o040000;
/** Character device. */
export const S_IFCHR = 0o020000;
/** FIFO. */
export const S_IFIFO = 0o010000;

/** Directory entry file types. */
export const FT_REG = 1;
/** Directory. */
export const FT_DIR = 2;
/** Character device. */
export const FT_CHR = 3;
/** Block device. */
export const FT_BLK = 4;
/** FIFO. */
export const FT_FIFO = 5;
/** Socket. */
export const FT_SOCK = 6;
/** Symlink. */
export const FT_LNK = 7;

/** EROFS xattr name prefixes by index (index 0 = no prefix). */
export const XATTR_PREFIXES: readonly string[] = [
  "",
  "user.",
  "system.posix_acl_access",
  "system.posix_acl_default",
  "trusted.",
  "lustre.",
  "security.",
];
/** Prefix index of `system.posix_acl_access`. */
export const XATTR_INDEX_POSIX_ACL_ACCESS = 2;
/** Prefix index of `system.posix_acl_default`. */
export const XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
/** Prefix index of `lustre.` (not used by C mkcomposefs, so skipped in V0/V1). */
export const XATTR_INDEX_LUSTRE = 5;

/** overlayfs xattr namespace; user xattrs in it are escaped with one more `overlay.`. */
export const XATTR_OVERLAY_PREFIX = "trusted.overlay.";
/** The escaped form of {@link XATTR_OVERLAY_PREFIX}. */
export const XATTR_OVERLAY_ESCAPED_PREFIX = "trusted.overlay.overlay.";
/** Points overlayfs at the file's data and carries its fs-verity digest. */
export const XATTR_OVERLAY_METACOPY = "trusted.overlay.metacopy";
/** Absolute path of the object in the data-only layer. */
export const XATTR_OVERLAY_REDIRECT = "trusted.overlay.redirect";
/** `opaque=y` on the root: nothing from lower layers shows at `/`. */
export const XATTR_OVERLAY_OPAQUE_ROOT = "trusted.overlay.opaque";
/** Escaped whiteout marker on an escaped user whiteout (Epoch1). */
export const XATTR_OVERLAY_WHITEOUT = "trusted.overlay.overlay.whiteout";
/** User-namespace twin of {@link XATTR_OVERLAY_WHITEOUT}. */
export const XATTR_USERXATTR_WHITEOUT = "user.overlay.whiteout";
/** Escaped "has whiteouts" marker on the whiteout's parent. */
export const XATTR_OVERLAY_WHITEOUTS = "trusted.overlay.overlay.whiteouts";
/** User-namespace twin of {@link XATTR_OVERLAY_WHITEOUTS}. */
export const XATTR_USERXATTR_WHITEOUTS = "user.overlay.whiteouts";
/** Escaped `opaque=x` on the whiteout's parent (V1 only). */
export const XATTR_OVERLAY_OPAQUE = "trusted.overlay.overlay.opaque";
/** User-namespace twin of {@link XATTR_OVERLAY_OPAQUE}. */
export const XATTR_USERXATTR_OPAQUE = "user.overlay.opaque";
/** The only xattr the root whiteout stubs inherit from the root. */
export const XATTR_SECURITY_SELINUX = "security.selinux";

/** fs-verity algorithm numbers in the metacopy xattr. */
export const FSVERITY_ALG_SHA256 = 1;
/** SHA-512. */
export const FSVERITY_ALG_SHA512 = 2;

/** Largest inline content a dumpfile may carry (C mkcomposefs's limit; composefs-rs: 512). */
export const MAX_INLINE_CONTENT = 5000;
/**
 * Files of at most this many bytes are stored inline (in a layer splitstream, and in the EROFS
 * image made by a directory scan or an OCI import); larger ones are external objects. A format
 * constant of composefs (`INLINE_CONTENT_MAX_V0` in composefs-rs): changing it changes every
 * layer's splitstream and every image. The one definition in the code base.
 */
export const INLINE_CONTENT_MAX = 64;
/** Longest symlink target (PATH_MAX − 1; composefs-rs limits dumpfiles to 1024). */
export const SYMLINK_MAX = 4095;
/** Longest path in a dumpfile. */
export const PATH_MAX = 4096;
/** Longest xattr name. */
export const XATTR_NAME_MAX = 255;
/** Longest xattr value. */
export const XATTR_SIZE_MAX = 65535;
/** Largest sum of an inode's xattr name lengths. */
export const XATTR_LIST_MAX = 65535;

/** The three writer flavours: V0/V1 = C mkcomposefs 1.0.x layout, V2 = legacy composefs-rs. */
export type FormatVersion = 0 | 1 | 2;
