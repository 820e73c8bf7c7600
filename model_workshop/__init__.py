"""The workshop: code that builds, trains and evaluates models. The services never import it."""
