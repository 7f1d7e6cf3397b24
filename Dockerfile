# stepwise container image.
#
#   docker build -t stepwise .
#   docker run --rm -e DATABASE_URL=postgres://app:...@db:5432/app stepwise          # = stepwise up
#   docker run --rm -e DATABASE_URL=... stepwise status
#
# Stage 1 compiles the release binary on Debian bookworm (libpqxx and libstdc++ linked
# statically). Stage 2 gathers that binary, serve's HTTP module (stepwise-http.so, loaded by
# `serve` only) and exactly the shared libraries they load (libpq, OpenSSL, and for the module
# cpp-httplib and libstdc++, as `ldd` lists them) into a root filesystem with a
# non-root user. The final image is that root filesystem and nothing else: no shell, no
# package manager. It embeds the migrations in migrations/; an application bundles its own
# with `stepwise bundle` (examples/app-image/Dockerfile, docs/operations.md).
#
# Works with the classic builder and with BuildKit (no syntax directive, no RUN --mount).
#
# Build arguments:
#   DEBIAN_IMAGE      base of the build stages (default debian:bookworm)
#   STEPWISE_BUILDER  the stage or image the binary and its libraries come from. Default
#                     "build" (compile here). To package a binary built elsewhere, give an
#                     image holding it at /usr/local/bin/stepwise (and serve's HTTP module at
#                     /usr/local/lib/stepwise/stepwise-http.so) with their shared libraries
#                     installed; with BuildKit the compile stage is then skipped
#                     (tests/container/run.sh does this so CI need not compile twice).

ARG DEBIAN_IMAGE=debian:bookworm
ARG STEPWISE_BUILDER=build

# ---- build: the release binary ----------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libpqxx-dev libpq-dev libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libssl-dev libpg-query-dev libcpp-httplib-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake --preset release -DSTEPWISE_BUILD_TESTS=OFF >/dev/null \
 && cmake --build --preset release --target stepwise stepwise-http \
 && install -m 0755 build/release/stepwise /usr/local/bin/stepwise \
 && install -D -m 0644 build/release/stepwise-http.so /usr/local/lib/stepwise/stepwise-http.so \
 && /usr/local/bin/stepwise --version

# ---- rootfs: the binary, the shared libraries it loads, a user ---------------------------
FROM ${STEPWISE_BUILDER} AS rootfs
RUN set -eu; \
    bin=/usr/local/bin/stepwise; mod=/usr/local/lib/stepwise/stepwise-http.so; r=/rootfs; \
    mkdir -p "$r/usr/local/bin" "$r/usr/local/lib/stepwise" "$r/etc" "$r/tmp" "$r/home/stepwise"; \
    chmod 1777 "$r/tmp"; \
    strip --strip-debug -o "$r$bin" "$bin" 2>/dev/null || cp "$bin" "$r$bin"; \
    strip --strip-debug -o "$r$mod" "$mod" 2>/dev/null || cp "$mod" "$r$mod"; \
    chmod 0755 "$r$bin"; chmod 0644 "$r$mod"; \
    for f in "$bin" "$mod"; do \
      if ldd "$f" | grep -q 'not found'; then ldd "$f"; exit 1; fi; \
      for lib in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do \
        cp -L --parents "$lib" "$r"; \
      done; \
    done; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nstepwise:x:10001:10001:stepwise:/home/stepwise:/sbin/nologin\n' > "$r/etc/passwd"; \
    printf 'root:x:0:\nstepwise:x:10001:\n' > "$r/etc/group"; \
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$r/etc/nsswitch.conf"; \
    chown 10001:10001 "$r/home/stepwise"; \
    chroot "$r" /usr/local/bin/stepwise --version

# ---- runtime ----------------------------------------------------------------------------
FROM scratch AS runtime
COPY --from=rootfs /rootfs/ /
ENV HOME=/home/stepwise \
    PATH=/usr/local/bin
USER 10001:10001
WORKDIR /home/stepwise
ENTRYPOINT ["stepwise"]
CMD ["up"]
