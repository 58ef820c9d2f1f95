# syntax=docker/dockerfile:1
# The kata-lcm image the Argo WorkflowTemplate's steps run (chart/): Node.js LTS + kata-lcm + helm.
# Nothing is downloaded at run time, so air-gapped clusters only need this image mirrored.
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/s390x,linux/ppc64le \
#     -t REGISTRY/kata-lcm:0.1.0 --push .
#
# Both build stages run on the build machine ($BUILDPLATFORM, no emulation): kata-lcm and its
# dependencies are plain JavaScript, and helm is cross-compiled by Go. Only the final stage is
# per architecture, and it only copies files.

# Keep HELM_VERSION equal to scripts/testbed/versions.env (the helm the tests run).
ARG HELM_VERSION=v4.1.4
ARG GO_VERSION=1.25
ARG NODE_VERSION=24

# helm, built from its Go module for the target architecture (no prebuilt binary is fetched).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS helm
ARG HELM_VERSION
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}" \
      helm.sh/helm/v4/cmd/helm@${HELM_VERSION} \
 && bin="$(go env GOPATH)/bin" \
 && if [ -x "$bin/${TARGETOS}_${TARGETARCH}/helm" ]; then mv "$bin/${TARGETOS}_${TARGETARCH}/helm" /helm; else mv "$bin/helm" /helm; fi

# kata-lcm: compiled, then only its production dependencies kept.
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build && npm prune --omit=dev \
 && printf '#!/bin/sh\nexec node --max-semi-space-size=1 --max-old-space-size=256 /opt/kata-lcm/bin/run.js "$@"\n' > /kata-lcm && chmod 0755 /kata-lcm

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
COPY --from=helm /helm /usr/local/bin/helm
COPY --from=build /kata-lcm /usr/local/bin/kata-lcm
WORKDIR /opt/kata-lcm
COPY --from=build /src/package.json /src/oclif.manifest.json ./
COPY --from=build /src/bin/run.js ./bin/run.js
COPY --from=build /src/dist ./dist
COPY --from=build /src/node_modules ./node_modules
# install-workflow installs this chart.
COPY chart ./chart
# The image's `node` user, by number so runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["kata-lcm"]
