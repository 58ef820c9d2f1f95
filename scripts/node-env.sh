# Sourced by the project's scripts: puts a Node.js >= 22 first on PATH.
# The machine's Node is used when it is new enough; otherwise node@24 from the npm registry
# (the package ships the binary) is installed once into the cache and used instead.
KATA_LCM_CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
export KATA_LCM_CACHE
_kata_lcm_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null 2>&1 || [ "$(_kata_lcm_node_major node)" -lt 22 ]; then
  _kata_lcm_node_dir="$KATA_LCM_CACHE/node"
  _kata_lcm_node_bin="$_kata_lcm_node_dir/node_modules/node/bin"
  if [ ! -x "$_kata_lcm_node_bin/node" ] || [ "$(_kata_lcm_node_major "$_kata_lcm_node_bin/node")" -lt 22 ]; then
    echo "kata-lcm setup: Node $(node --version 2>/dev/null || echo none) is older than 22; installing node@24 from npm into $_kata_lcm_node_dir" >&2
    npm install --silent --no-audit --no-fund --prefix "$_kata_lcm_node_dir" node@24 >&2
  fi
  export PATH="$_kata_lcm_node_bin:$PATH"
fi
unset -f _kata_lcm_node_major
