# The county pipeline's image: Airflow 3.3 and exactly the dependency tree the tests run on
# (requirements.txt resolved under constraints.txt), plus the project's code under /opt/county.
# One image serves every Airflow service in docker-compose.yml; the command picks the service.
#
# Built on python:3.11-slim rather than apache/airflow: the official image carries Airflow's
# own constraint set and ~80 providers, and installing ours on top of it would give a tree no
# test has seen.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/county/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/county/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=False \
    PYTHONPATH=/opt/county \
    DATA_DIR=/data

# uid 50000 and gid 0 as in Airflow's own image, so that bind mounts prepared for it fit.
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow \
 && mkdir -p /opt/county /data/landing /data/archive /data/reports /data/work \
             /opt/airflow/logs /opt/airflow/auth \
 && chown -R 50000:0 /opt/airflow /data \
 && chmod -R g+rwX /opt/airflow /data

# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements.txt constraints.txt /opt/county/
RUN pip install --requirement /opt/county/requirements.txt --constraint /opt/county/constraints.txt \
 && python -c "import importlib.metadata as m; print('apache-airflow', m.version('apache-airflow'))"

# The code (what .dockerignore leaves: no tests, data, virtualenv or git history).
COPY --chown=50000:0 . /opt/county/

USER 50000
WORKDIR /opt/airflow
EXPOSE 8080
ENTRYPOINT ["airflow"]
CMD ["version"]
