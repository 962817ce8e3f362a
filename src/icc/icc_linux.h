/* Private to the Linux channel: what the pairing/handover file and the endpoint file share. */
#ifndef KEEL_ICC_LINUX_H
#define KEEL_ICC_LINUX_H

#include <fcntl.h>

#include "keel/icc.h"

/* Seals every region keel_icc_pair makes; keel_icc_open refuses a region without them. */
#define KEEL_ICC_REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* Closes *fd if open and marks it closed. */
void keel_icc_close_fd(int *fd);
/* An end with every descriptor closed (-1). */
void keel_icc_end_clear(keel_icc_end *e);

#endif
