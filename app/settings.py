"""Runtime settings, read from ``ARCHPLAN_*`` environment variables (and an optional ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-insecure-change-me"


class Settings(BaseSettings):
    """archplan configuration.

    Every field maps to an environment variable with the ``ARCHPLAN_`` prefix, e.g.
    ``ARCHPLAN_DATABASE_URL``. Outside development the default secret key is refused.
    """

    model_config = SettingsConfigDict(env_prefix="ARCHPLAN_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "development", description="development, test or production."
    )
    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'var' / 'archplan.db'}",
        description="SQLAlchemy URL; SQLite by default, postgresql+psycopg://… in production.",
    )
    secret_key: str = Field(DEFAULT_SECRET_KEY, description="Signs sessions and CSRF tokens.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    pricing_dir: Path = Field(PROJECT_ROOT / "pricing_data", description="Bundled price snapshot.")
    solver: Literal["highs", "cbc"] = "highs"
    solver_time_limit_s: float = Field(60.0, gt=0)
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0, description="Largest accepted request body.")
    session_days: float = Field(14.0, gt=0, le=90, description="How long a browser stays signed in.")
    password_scrypt_n: int = Field(
        2**15, ge=2**10, le=2**20,
        description="scrypt cost N for new password hashes (r=8, p=3: OWASP's 2^15 setting).",
    )
    rate_limit_per_minute: int = Field(
        600, ge=1, description="API requests per minute per key (and per client IP without a key).",
    )
    sign_in_attempts_per_minute: int = Field(10, ge=1, description="Sign-in attempts per minute per client IP.")
    api_key_cache_s: float = Field(
        5.0, ge=0, le=300,
        description=("Seconds a process keeps a valid API key after looking it up (0: look up every request). "
                     "A key revoked on another replica stops working there within this time."),
    )
    job_workers: int = Field(
        1, ge=0, le=32,
        description="Threads of the job runner embedded in the app (0: no embedded runner).",
    )
    job_poll_s: float = Field(1.0, gt=0, le=60, description="How often an idle runner looks for queued jobs.")
    job_heartbeat_s: float = Field(5.0, gt=0, le=300, description="How often a runner refreshes its jobs' heartbeat.")
    job_stale_after_s: float = Field(
        30.0, gt=0, description="A running job whose heartbeat is older than this is queued again.",
    )
    job_max_attempts: int = Field(3, ge=1, le=20, description="Runs of a job before a lapsed one is failed.")
    job_backend: Literal["embedded", "procrastinate"] = Field(
        "embedded",
        description=("Who runs jobs: the runner embedded in the app (`embedded`), or `archplan worker` "
                     "processes woken through a procrastinate queue in PostgreSQL (`procrastinate`)."),
    )
    job_isolation: Literal["process", "thread"] = Field(
        "process",
        description=("Where a job's solve runs: a child process per solve, which a cancel or the time limit "
                     "stops at once (`process`), or the runner's own thread (`thread`)."),
    )
    job_nice: int = Field(
        10, ge=0, le=19,
        description=("CPU priority of solve processes (Unix nice, 0-19): the web app answers first when "
                     "solves and requests compete for the same cores. 0 runs solves at the app's priority."),
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEFAULT_SECRET_KEY:
                raise ValueError(
                    "ARCHPLAN_SECRET_KEY must be set to a random value outside development "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
                )
            if len(self.secret_key) < 32:
                raise ValueError("ARCHPLAN_SECRET_KEY must be at least 32 characters in production.")
        return self

    @model_validator(mode="after")
    def _job_timing(self) -> Settings:
        if self.job_stale_after_s < 2 * self.job_heartbeat_s:
            raise ValueError(
                "ARCHPLAN_JOB_STALE_AFTER_S must be at least twice ARCHPLAN_JOB_HEARTBEAT_S, or running "
                "jobs would be taken for abandoned between two heartbeats."
            )
        if self.job_backend == "procrastinate" and not self.database_url.startswith("postgresql+psycopg://"):
            raise ValueError(
                "ARCHPLAN_JOB_BACKEND=procrastinate needs PostgreSQL: set ARCHPLAN_DATABASE_URL to a "
                "postgresql+psycopg://… URL, or use ARCHPLAN_JOB_BACKEND=embedded (the app runs the jobs itself)."
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
