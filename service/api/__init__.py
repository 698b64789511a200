"""The HTTP shell: dependencies, error handlers, middleware and one router per resource."""
