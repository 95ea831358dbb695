from tests.nodes.fixtures import *  # noqa: F401,F403
