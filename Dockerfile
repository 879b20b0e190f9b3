# bidproc: API and workers (same image; the command decides). Slim, non-root.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bidproc ./bidproc
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 openssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/bidproc --create-home bidproc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/bidproc.toml /etc/bidproc/bidproc.toml
ENV BIDPROC_CONFIG=/etc/bidproc/bidproc.toml \
    BIDPROC_SERVICE_DATA_DIR=/var/lib/bidproc \
    BIDPROC_API_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER bidproc
WORKDIR /var/lib/bidproc
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)" || exit 1
ENTRYPOINT ["bidproc"]
CMD ["serve"]
