"""``procman init``'s starter files: what an existing app directory holds (a Django project, a
Flask or FastAPI app, gunicorn or uvicorn among its dependencies), and the starter Procfile,
queues.yml, procman.yml and .env.example filled from it."""
