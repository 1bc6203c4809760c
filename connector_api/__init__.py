"""The source system's connector: a FastAPI app over the source database, and its data generator."""
