"""labctl: reproduce an ONTAP FlexGroup + GPU host LLM fine-tuning lab, instrumented end to end."""

__version__ = "0.1.0"
