"""What the recommendation API and the registry API share: errors, input fields, parsers, throttling, schema."""
