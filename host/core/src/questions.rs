//! Answering network questions from this server's own objects, by meaning. (Being written.)
