"""The deploy rehearsal: infra/deploy.sh and infra/teardown.sh against stand-ins."""
