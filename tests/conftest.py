from tests.services import clamd_settings, postgres_url, rabbitmq_url, redis_url, s3_endpoint  # noqa: F401
