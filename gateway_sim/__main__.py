"""``python -m gateway_sim`` is the ``gateway-sim`` command (tests use it: no install needed)."""

from gateway_sim.cli import main

if __name__ == "__main__":
    main(prog_name="gateway-sim")
