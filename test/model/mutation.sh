#!/usr/bin/env bash
# Does the model-based suite find issue 11's passivation race? Reverts the fix in a scratch worktree
# (the passivation's deferred end acts on the key's current mailbox again, and the offer's result is
# ignored again), then runs the histories with N seeds and counts the seeds that fail.
#
#   bash test/model/mutation.sh [seeds=10] [FC_RUNS=2000]
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=${1:-10}
runs=${2:-2000}
tree=$(mktemp -d)
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git worktree add --detach "$tree" HEAD >/dev/null
ln -s "$PWD/node_modules" "$tree/node_modules"
file="$tree/src/internal/dispatcher.ts"
# the mutation
perl -0pi -e 's/Queue\.endUnsafe\(mailbox\)\n    if \(entry\.mailbox === mailbox\) wake\(core, entry\)/Queue.endUnsafe(entry.mailbox)\n    wake(core, entry)/' "$file"
perl -0pi -e 's/if \(!Queue\.offerUnsafe\(mailbox, envelope\)\) reject\(envelope, "unavailable"\)/Queue.offerUnsafe(mailbox, envelope)/' "$file"
if git -C "$tree" diff --quiet; then echo "mutation: the code it reverts was not found" >&2; exit 2; fi
git -C "$tree" diff --stat
failed=0
for i in $(seq 1 "$seeds"); do
  seed=$((1000 + i))
  if (cd "$tree" && FC_SEED=$seed FC_RUNS=$runs npx vitest run test/model/dispatcher.model.test.ts >"$tree/seed-$seed.log" 2>&1); then
    echo "seed $seed: passed (the race was not found)"
  else
    failed=$((failed + 1))
    echo "seed $seed: failed: $(grep -o 'Property failed after [0-9]* tests' "$tree/seed-$seed.log" | head -1)"
  fi
done
echo "the mutation was found by $failed of $seeds seeds (FC_RUNS=$runs)"
