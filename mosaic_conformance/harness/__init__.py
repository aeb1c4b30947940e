"""What judges a fleet or a connector: the pytest plugin, the fleet harness, the systems a fleet
under test runs on, and the chat servers a connector under test talks to.

Nothing in the shipped library (``fleet``, ``connectors``, ``contract``) imports from here.
"""
