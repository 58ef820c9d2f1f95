# Source me: puts the testbed tools built by scripts/testbed/build-tools.sh
# first on PATH (kubectl, kwokctl, helm, argo, etcd, kube-*).
#   . scripts/testbed/env.sh
KATA_LCM_CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
case ":$PATH:" in
  *":$KATA_LCM_CACHE/bin:"*) ;;
  *) PATH="$KATA_LCM_CACHE/bin:$PATH" ;;
esac
export KATA_LCM_CACHE PATH
