"""Window planning: scenes of the clip and the fixed grid of chunks inside each scene."""
