"""The studio: a REST API, a web page, a database of jobs and artifacts, and executors that run generation.

    aigc studio                          # http://127.0.0.1:8000 (page), /docs (API), /metrics
    from aigc.studio.app import create_app
    app = create_app(StudioSettings.from_env(models={"digits": "runs/cgan"}))

See app.py for the parts and settings.py for every setting (AIGC_* environment variables).
"""
