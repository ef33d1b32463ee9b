"""One module per CLI verb: ``register(subparsers)`` adds the parser, ``run(args)`` calls the API."""
