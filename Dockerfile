# The services' image for docker-compose.yml and production: same code, real Kafka and PostgreSQL.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY services ./services
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["settlement"]
