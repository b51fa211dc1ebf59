"""What travels with a notebook: environment.yml, explicit lists, locks; export from a prefix."""
