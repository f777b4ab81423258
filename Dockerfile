# syntax=docker/dockerfile:1
# ArtStore: multi-stage build of the `artstore` binary, run on Debian slim.
#   docker build -t artstore .
#   docker run --rm -p 9000:9000 -p 9001:9001 -v artstore-data:/data artstore

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p artstore-gateway --bin artstore \
    && cp target/release/artstore /usr/local/bin/artstore

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data artstore \
    && mkdir -p /data /etc/artstore && chown artstore /data
COPY --from=build /usr/local/bin/artstore /usr/local/bin/artstore
COPY config/artstore.toml /etc/artstore/artstore.toml
USER artstore
WORKDIR /data
ENV ARTSTORE_DATA_DIR=/data \
    ARTSTORE_S3_ADDR=0.0.0.0:9000 \
    ARTSTORE_ADMIN_ADDR=0.0.0.0:9001 \
    ARTSTORE_LOG_FORMAT=json \
    RUST_LOG=info
VOLUME ["/data"]
EXPOSE 9000 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9001/health/ready || exit 1
ENTRYPOINT ["artstore"]
CMD ["serve", "--config", "/etc/artstore/artstore.toml"]
