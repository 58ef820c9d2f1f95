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
ARG HELM_VERSION=v4.3.2
ARG GO_VERSION=1.26
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

# kata-lcm: compiled, then only its production dependencies kept, laid out as the final image's
# root in /out by scripts/image/app.sh, the one recipe the test bed's registry-less build
# (scripts/image/build-local.sh) runs too.
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY scripts/image/app.sh /app.sh
COPY package.json package-lock.json ./
RUN sh /app.sh deps /src
COPY tsconfig.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY bin ./bin
COPY src ./src
# install-workflow installs this chart.
COPY chart ./chart
RUN sh /app.sh assemble /src /out
COPY --from=helm /helm /out/usr/local/bin/helm

# The final stage only copies that tree. scripts/image/build-local.sh reads ENV, WORKDIR, USER
# and ENTRYPOINT from here.
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /out/ /
WORKDIR /opt/kata-lcm
# The image's `node` user, by number so runAsNonRoot can check it.
USER 1000:1000
ENTRYPOINT ["kata-lcm"]
