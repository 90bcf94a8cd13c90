# Sourced by scripts/demo and scripts/leaf-baselines: a scratch lab outside this
# repository's own research log.
#
#   scratch_lab DIR LEAF...   DIR becomes a git repository and a lab root holding
#                             copies of leaves/LEAF..., committed; the shell cds there.
# Needs $repo (this repository) and $lab (the lab binary).
scratch_lab() {
  local dir=$1 leaf
  shift
  rm -rf "$dir"
  mkdir -p "$dir/leaves"
  for leaf in "$@"; do
    cp -r "$repo/leaves/$leaf" "$dir/leaves/"
  done
  find "$dir/leaves" \( -name __pycache__ -o -name _archive \) -prune -exec rm -rf {} +
  cd "$dir"
  git init -q -b main
  git config user.name "lab scratch"
  git config user.email "scratch@lab.invalid"
  "$lab" init . --name "$(basename "$dir")" >/dev/null
  git add -A
  git commit -qm "scratch lab: $* as shipped"
}
