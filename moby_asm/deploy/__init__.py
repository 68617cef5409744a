"""Application services on a Docker Engine in swarm mode: their model, the Compose file and deploys."""
