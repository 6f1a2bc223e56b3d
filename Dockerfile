# rotator image. Build: podman build -t rotator .   (or docker build)
# BASE_IMAGE lets CI build on a local stand-in for python:3.12-slim (Debian bookworm's
# Python 3.11, made by .ci/container-base; the `container` tests in tests/test_image.py).
# .dockerignore limits the build context to what is copied below.
ARG BASE_IMAGE=python:3.12-slim

# --- build: a virtualenv from the hash-pinned lock, then rotator itself without deps ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/rotator
COPY requirements.lock ./
# Every dependency (and setuptools, to build rotator without fetching anything unpinned)
# is pinned and verified by hash: requirements.lock, made by uv (see docs/development.md).
RUN /opt/rotator/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY rotator ./rotator
RUN /opt/rotator/bin/pip install --no-deps --no-build-isolation . \
    && /opt/rotator/bin/pip uninstall -y setuptools

# --- run: the virtualenv only; non-root, read-only root filesystem friendly -------------
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rotator" \
      org.opencontainers.image.description="Certificate rotation for Istio ingress gateways" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/rotator-dev/rotator"
ENV PATH=/opt/rotator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/rotator /opt/rotator
USER 10001:10001
ENTRYPOINT ["rotator"]
CMD ["--help"]
