"""Herald: decides which legal notices a reader must see for an article, given where the reader is."""
