"""A module that raises while it is imported (``env=tests.fake_broken_module:Any-v0``)."""

raise RuntimeError("this module needs a licence server")
