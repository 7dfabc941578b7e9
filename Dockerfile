# The pipeline as an image: `aop` is the entrypoint, each service one container
# (`docker run IMAGE listen`, `... fold`, `... combine`, `... project`, `... settle`, `... api`).
# Built from the wheel, as CI's non-editable install test installs it
# (tests/integration/test_wheel.py): docker build -t aop .

# 1. build: the wheel and every dependency as wheels
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY aop aop
COPY core core
COPY runtime runtime
COPY log log
COPY streams streams
COPY projections projections
COPY settlement settlement
COPY api api
COPY replay replay
COPY cli cli
COPY simchain simchain
COPY schemas schemas
RUN python -m build --wheel --outdir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/attention_oracle_pipeline-*.whl

# 2. run: the wheels installed, no compiler, no source tree, a non-root user
FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 aop
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels attention-oracle-pipeline \
 && rm -rf /wheels
USER aop
WORKDIR /home/aop
# the fold's local state and the listener's audit file (mount volumes here)
ENV AOP_FOLD_DATADIR=/home/aop/fold AOP_AUDIT_DIR=/home/aop/audit \
    AOP_METRICS_HOST=0.0.0.0 AOP_API_HOST=0.0.0.0 AOP_INGEST_HOST=0.0.0.0
RUN mkdir -p fold audit
ENTRYPOINT ["aop"]
CMD ["--help"]
