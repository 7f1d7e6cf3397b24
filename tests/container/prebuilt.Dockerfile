# Test helper (tests/container/run.sh): an image holding a stepwise binary built on the host at
# /usr/local/bin/stepwise and its HTTP module at /usr/local/lib/stepwise/stepwise-http.so, with
# the shared libraries they load installed from Debian. Given to
# the real Dockerfile as --build-arg STEPWISE_BUILDER=..., it replaces the compile stage, so CI
# packages the binary it already built instead of compiling a second time.
# RUNTIME_PACKAGES: libpq5 for a release binary; the dev build's sanitizer runtimes as well.
ARG DEBIAN_IMAGE=debian:bookworm
FROM ${DEBIAN_IMAGE}
ARG RUNTIME_PACKAGES=libpq5
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*
COPY stepwise /usr/local/bin/stepwise
COPY stepwise-http.so /usr/local/lib/stepwise/stepwise-http.so
RUN /usr/local/bin/stepwise --version
