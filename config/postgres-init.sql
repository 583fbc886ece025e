-- The OfficeFlow store lives in its own database beside Airflow's (docker-compose).
CREATE DATABASE officeflow OWNER officeflow;
