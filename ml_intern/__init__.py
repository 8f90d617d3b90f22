"""ml-intern: an autonomous ML engineering agent built on LangGraph."""

import os

__version__ = "0.1.0"

# litellm downloads its price table at import time unless told to use the copy it ships; whichever of our
# modules imports it first (model checks, pricing, the chat model), it must never touch the network for that.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
