"""Request and response models of the HTTP API, with the examples Swagger UI shows."""
