-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- POSTGRES_DB (lakebox) is the warehouse; Dagster and MLflow keep their own databases.
create database dagster;
create database mlflow;
