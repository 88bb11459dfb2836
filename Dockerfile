# The gateway image: `docker compose up` (see docker-compose.yaml) or
#   docker build -t gateway . && docker run -p 127.0.0.1:9000:9000 -e DEEPSEEK_API_KEY gateway
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies, then the package, then routes: each layer is rebuilt only when what it copies changes.
# The runtime dependencies and the build backend (setuptools) come from the lock, every file checked
# against its sha256 (requirements.lock says how to regenerate it); the package then builds with that
# setuptools and installs without fetching or resolving anything (--no-build-isolation, --no-deps).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install . --no-deps --no-build-isolation \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --no-create-home gateway

# Default route files; docker-compose.yaml mounts ./routes over them, read-only.
COPY routes ./routes

# Numeric, so Kubernetes can check `runAsNonRoot` against the image (deploy/kubernetes/ sets the same).
USER 10001:10001
EXPOSE 9000

# slim has no curl: the health check is a Python one-liner.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health', timeout=3)"]

# Listening on 0.0.0.0 inside the container; publish the port beyond localhost only with gateway keys
# configured (`auth: keys` in a route file).
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "9000", "--config", "/app/routes"]
