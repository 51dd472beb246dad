"""Operations: the admin API's service and router, the console's static files, the OpenAPI document."""
