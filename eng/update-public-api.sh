#!/usr/bin/env bash
# Adds every public symbol the PublicApiAnalyzers report as undeclared (RS0016) to the project's
# PublicAPI.Unshipped.txt. Review the diff before committing: the API files are the record of what we ship.
# Usage: eng/update-public-api.sh src/IoreqSdk
set -euo pipefail
dir=${1:?usage: eng/update-public-api.sh <project folder>}
out=$(dotnet build "$dir" -c Release --no-incremental 2>&1 || true)
symbols=$(grep -oE "RS0016: Symbol '[^']+'" <<<"$out" | sed -E "s/^RS0016: Symbol '(.*)'$/\1/" | sort -u || true)
[ -n "$symbols" ] || { echo "no undeclared public API"; exit 0; }
file="$dir/PublicAPI.Unshipped.txt"
{ cat "$file"; printf '%s\n' "$symbols"; } | grep -v '^#nullable' | sort -u > "$file.tmp"
{ echo '#nullable enable'; cat "$file.tmp"; } > "$file"
rm "$file.tmp"
echo "added $(wc -l <<<"$symbols") symbols to $file"
