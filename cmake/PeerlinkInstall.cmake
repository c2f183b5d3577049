# Install rules: filled in with packaging.
