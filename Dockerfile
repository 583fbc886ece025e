# OfficeFlow image: Airflow 3.3 with OfficeFlow's DAGs, operators, plugin and shared code.
# The repository root is /opt/officeflow and is on PYTHONPATH, as in ./run.sh and the tests.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    PYTHONPATH=/opt/officeflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/officeflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/officeflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    OFFICEFLOW_ENV=production

RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 tini fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 50000 --home-dir /opt/airflow airflow

WORKDIR /opt/officeflow
COPY requirements.txt .
RUN pip install --no-cache-dir uv \
    && uv pip install --system --no-cache -r requirements.txt

COPY dags/ dags/
COPY operators/ operators/
COPY plugins/ plugins/
COPY include/ include/
COPY config/ config/

USER airflow
EXPOSE 8080
ENTRYPOINT ["tini", "--", "airflow"]
CMD ["api-server", "--port", "8080"]
