/* Message types shared by icc_peer and the tests that drive it. */
#ifndef KEEL_TEST_ICC_PEER_H
#define KEEL_TEST_ICC_PEER_H
enum { PEER_DATA = 1, PEER_QUIT = 2, PEER_ECHO = 3 };
#endif
