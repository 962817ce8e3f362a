/* placeholder */
#include "keel/modbus.h"
