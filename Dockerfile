# syntax=docker/dockerfile:1
# zoomprobe: a static binary on distroless, running as a numeric non-root user.
#
#   docker build -t ghcr.io/zoomprobe/zoomprobe:$(cat VERSION) \
#     --build-arg REVISION=$(git rev-parse --short HEAD) .
#   docker run --network host --cap-drop ALL --cap-add NET_RAW zoomprobe \
#     run --config.file=/etc/zoomprobe/zoomprobe.yml
#
# Capturing needs CAP_NET_RAW and nothing else. A non-root process only gets a
# capability from its file, so the build stage sets cap_net_raw on the binary
# (as CoreDNS does for its port); the container must still allow NET_RAW
# (--cap-add NET_RAW, or capabilities.add: [NET_RAW] in Kubernetes).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version comes from the VERSION file unless --build-arg VERSION= says
# otherwise; the revision from --build-arg REVISION (.git is not copied).
ARG VERSION=""
ARG REVISION=unknown
RUN version="${VERSION:-$(cat VERSION)}" \
 && CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${version} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=docker" \
      -o /out/zoomprobe ./cmd/zoomprobe \
 && setcap cap_net_raw=+ep /out/zoomprobe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/zoomprobe /usr/bin/zoomprobe
USER 65532:65532
EXPOSE 18801
ENTRYPOINT ["/usr/bin/zoomprobe"]
CMD ["run"]
