#!/usr/bin/env bash
# Formats our C++ with .clang-format (clang-format 14: another version
# formats differently, so no other is used).
#   bash scripts/format.sh           formats in place
#   bash scripts/format.sh --check   changes nothing; lists the files that
#                                    differ from the style and exits 1 if any
# Covers models/ src/ apps/ tools/ tests/ bench/ fuzz/ and our SentencePiece
# bridge in third_party/, tracked or new (not ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "format.sh: unknown argument $1 (use --check or nothing)" >&2; exit 2 ;;
esac
format=""
for candidate in clang-format-14 clang-format; do
  if command -v "$candidate" > /dev/null && "$candidate" --version | grep -q "version 14\."; then
    format=$candidate
    break
  fi
done
if [ -z "$format" ]; then
  echo "format.sh: clang-format 14 not found (apt-get install clang-format-14)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
  models src apps tools tests bench fuzz third_party/sentencepiece |
  grep -E '\.(h|hpp|cc|cpp)$' | sort -u)
if [ "$check" = 0 ]; then
  "$format" -i --style=file "${files[@]}"
  exit 0
fi
differ=0
for f in "${files[@]}"; do
  if ! "$format" --style=file "$f" | cmp -s - "$f"; then
    echo "$f"
    differ=$((differ + 1))
  fi
done
if [ "$differ" -gt 0 ]; then
  echo "format.sh: $differ file(s) differ from .clang-format; bash scripts/format.sh formats them" >&2
  exit 1
fi
