#!/usr/bin/env bash
# Builds Varco's container image without a daemon and without a registry: buildah (Debian
# package) with the vfs storage driver and chroot isolation, which work as root on a plain
# machine or inside CI's own container, from an empty image (`scratch`). The image holds:
#   /usr/local/bin/varco        the given binary, debug info stripped (objcopy)
#   the shared libraries it links (glibc, libgcc_s, libm: the build machine's Debian
#   packages, found with ldd), /etc/passwd and /etc/group naming the user nonroot (65532),
#   and the mount points /etc/varco, /var/lib/varco, /var/lib/varco-audit owned by it.
# No shell, no package manager, no CA bundle (Varco's TLS roots are compiled in).
# It runs as 65532:65532, exposes 8080, entrypoint varco, command
# `serve --config /etc/varco/varco.toml`: what deploy/k8s mounts and runs.
#
#   scripts/build-image.sh [BINARY] [IMAGE]
#     BINARY  default target/release/varco if built, else target/debug/varco
#     IMAGE   default localhost/varco:dev
# Environment: VARCO_IMAGE_STORE (buildah's storage, default target/image-store).
# Prints `image IMAGE size BYTES` on the last line of stdout. `make image` runs it; the
# test tests/tests/image.rs builds and runs the image in `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN=${1:-}
if [ -z "$BIN" ]; then
  if [ -x "$ROOT/target/release/varco" ]; then BIN="$ROOT/target/release/varco"; else BIN="$ROOT/target/debug/varco"; fi
fi
IMAGE=${2:-localhost/varco:dev}
STORE=${VARCO_IMAGE_STORE:-$ROOT/target/image-store}

die() { echo "build-image: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN is not built (cargo build --bin varco)"
command -v buildah >/dev/null || die "buildah missing (Debian: apt-get install buildah)"
command -v objcopy >/dev/null || die "objcopy missing (Debian: apt-get install binutils)"

B=(buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

STAGE=$(mktemp -d)
# mktemp makes it 0700, and the copy gives its mode to the image's / : the user could not
# reach anything.
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
install -d -m 0755 "$STAGE/usr/local/bin" "$STAGE/etc"
objcopy --strip-debug "$BIN" "$STAGE/usr/local/bin/varco"
chmod 0755 "$STAGE/usr/local/bin/varco"
# The dynamic loader and each library at the path the binary looks for it.
ldd "$BIN" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | while read -r lib; do
  real=$(readlink -f "$lib")
  # Keep the mode: the loader must stay executable (the kernel opens it for execution).
  install -D -m "$(stat -c %a "$real")" "$real" "$STAGE$lib"
done
[ -n "$(find "$STAGE" -name 'libc.so*' -print -quit)" ] || die "ldd found no libc for $BIN (a static binary needs no libraries: remove this check)"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$STAGE/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$STAGE/etc/group"
OWNED=(etc/varco var/lib/varco var/lib/varco-audit home/nonroot)
for d in "${OWNED[@]}"; do install -d -m 0755 "$STAGE/$d"; done
install -d -m 1777 "$STAGE/tmp"

# The workspace version (the binary's own `--version` is not relied on).
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
c=$("${B[@]}" from scratch)
cleanup() { [ -z "$c" ] || "${B[@]}" rm "$c" >/dev/null 2>&1 || true; rm -rf "$STAGE"; }
trap cleanup EXIT
"${B[@]}" copy "$c" "$STAGE/" / >/dev/null
# `buildah copy` makes everything root's; the user's own directories are given to it in the
# mounted container file system (vfs: a plain directory tree).
m=$("${B[@]}" mount "$c")
for d in "${OWNED[@]}"; do chown 65532:65532 "$m/$d"; done
"${B[@]}" umount "$c" >/dev/null
"${B[@]}" config \
  --user 65532:65532 \
  --port 8080/tcp \
  --workingdir / \
  --entrypoint '["/usr/local/bin/varco"]' \
  --cmd 'serve --config /etc/varco/varco.toml' \
  --label org.opencontainers.image.title=varco \
  --label org.opencontainers.image.licenses=EUPL-1.2 \
  --label "org.opencontainers.image.version=${VERSION:-unknown}" \
  "$c"
"${B[@]}" commit --quiet --rm "$c" "$IMAGE" >/dev/null
c=
# The previous build of the same name, now untagged.
"${B[@]}" rmi --prune >/dev/null 2>&1 || true
SIZE=$("${B[@]}" inspect --type image --format '{{.Size}}' "$IMAGE" 2>/dev/null || true)
if [ -z "$SIZE" ] || [ "$SIZE" = "<no value>" ]; then
  SIZE=$(du -sb "$STAGE" | awk '{print $1}')
fi
echo "image $IMAGE size $SIZE"
