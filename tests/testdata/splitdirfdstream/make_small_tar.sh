#!/usr/bin/env bash
# Regenerates small_tree/ and small.tar (GNU tar, deterministic). small.sdfs is then written by
# `deno test -A lib/splitdirfdstream/produce_from_tar_test.ts` with UPDATE_GOLDEN=1, and its
# structure is checked against the hand-derived chunk list in that test.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf small_tree small.tar
mkdir -p small_tree/sub
printf 'hello\n' > small_tree/hello.txt
: > small_tree/empty
head -c 512 /dev/zero | tr '\0' B > small_tree/sub/block.bin
for i in $(seq 0 99); do printf '%09d\n' "$i"; done > small_tree/sub/odd.txt # 1000 bytes
ln -s hello.txt small_tree/link
tar --format=gnu --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  --mode=u=rwX,go=rX -C small_tree -cf small.tar .
