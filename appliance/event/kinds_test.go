package event

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// kindCase is one payload type of the wire contract: a valid payload, the
// field of the oneof that holds it, the category and type it maps to, and the
// required field of the payload ("" when it has none).
type kindCase struct {
	field    string
	category string
	typ      string
	required string
	valid    func() *causalityv1.EventEnvelope // a valid envelope with this payload
	empty    func() *causalityv1.EventEnvelope // the same with an empty payload message
}

// allKinds lists every payload of EventEnvelope.payload, in field order.
// TestKindCoversEveryPayload checks it against the descriptor.
var allKinds = []kindCase{
	{"user_login", "user", "login", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserLogin{UserLogin: &causalityv1.UserLogin{UserId: "u-1", Method: "password"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserLogin{UserLogin: &causalityv1.UserLogin{}})
		}},
	{"user_logout", "user", "logout", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserLogout{UserLogout: &causalityv1.UserLogout{UserId: "u-1"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserLogout{UserLogout: &causalityv1.UserLogout{}})
		}},
	{"user_signup", "user", "signup", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserSignup{UserSignup: &causalityv1.UserSignup{UserId: "u-2", Method: "apple"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserSignup{UserSignup: &causalityv1.UserSignup{}})
		}},
	{"user_profile_update", "user", "profile_update", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserProfileUpdate{UserProfileUpdate: &causalityv1.UserProfileUpdate{UserId: "u-2", FieldsUpdated: []string{"email"}}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_UserProfileUpdate{UserProfileUpdate: &causalityv1.UserProfileUpdate{}})
		}},
	{"screen_view", "screen", "view", "screen_name",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{ScreenName: "Home", Params: map[string]string{"tab": "new"}}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{}})
		}},
	{"screen_exit", "screen", "exit", "screen_name",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScreenExit{ScreenExit: &causalityv1.ScreenExit{ScreenName: "Home", DurationMs: 5300}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScreenExit{ScreenExit: &causalityv1.ScreenExit{}})
		}},
	{"button_tap", "interaction", "button_tap", "button_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ButtonTap{ButtonTap: &causalityv1.ButtonTap{ButtonId: "buy", Coordinates: &causalityv1.Coordinates{X: 1, Y: 2}}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ButtonTap{ButtonTap: &causalityv1.ButtonTap{}})
		}},
	{"swipe_gesture", "interaction", "swipe", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_SwipeGesture{SwipeGesture: &causalityv1.SwipeGesture{Direction: causalityv1.SwipeDirection_SWIPE_DIRECTION_LEFT}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_SwipeGesture{SwipeGesture: &causalityv1.SwipeGesture{}})
		}},
	{"scroll_event", "interaction", "scroll", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScrollEvent{ScrollEvent: &causalityv1.ScrollEvent{ScreenName: "Feed", ScrollDepthPercent: 75}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ScrollEvent{ScrollEvent: &causalityv1.ScrollEvent{}})
		}},
	{"text_input", "interaction", "text_input", "field_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_TextInput{TextInput: &causalityv1.TextInput{FieldId: "email", TextLength: 17}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_TextInput{TextInput: &causalityv1.TextInput{}})
		}},
	{"long_press", "interaction", "long_press", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_LongPress{LongPress: &causalityv1.LongPress{ElementId: "photo", DurationMs: 900}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_LongPress{LongPress: &causalityv1.LongPress{}})
		}},
	{"double_tap", "interaction", "double_tap", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_DoubleTap{DoubleTap: &causalityv1.DoubleTap{ElementId: "photo"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_DoubleTap{DoubleTap: &causalityv1.DoubleTap{}})
		}},
	{"product_view", "commerce", "product_view", "product_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ProductView{ProductView: &causalityv1.ProductView{ProductId: "sku-1", PriceCents: 1999, Currency: "USD"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_ProductView{ProductView: &causalityv1.ProductView{}})
		}},
	{"add_to_cart", "commerce", "add_to_cart", "product_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AddToCart{AddToCart: &causalityv1.AddToCart{ProductId: "sku-1", Quantity: 2}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AddToCart{AddToCart: &causalityv1.AddToCart{}})
		}},
	{"remove_from_cart", "commerce", "remove_from_cart", "product_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_RemoveFromCart{RemoveFromCart: &causalityv1.RemoveFromCart{ProductId: "sku-1", Quantity: 1}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_RemoveFromCart{RemoveFromCart: &causalityv1.RemoveFromCart{}})
		}},
	{"checkout_start", "commerce", "checkout_start", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CheckoutStart{CheckoutStart: &causalityv1.CheckoutStart{CartId: "c-1", ItemCount: 1}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CheckoutStart{CheckoutStart: &causalityv1.CheckoutStart{}})
		}},
	{"checkout_step", "commerce", "checkout_step", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CheckoutStep{CheckoutStep: &causalityv1.CheckoutStep{CartId: "c-1", StepNumber: 2}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CheckoutStep{CheckoutStep: &causalityv1.CheckoutStep{}})
		}},
	{"purchase_complete", "commerce", "purchase_complete", "order_id",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{OrderId: "o-1", Items: []*causalityv1.PurchaseItem{{ProductId: "sku-1", Quantity: 1}}}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: &causalityv1.PurchaseComplete{}})
		}},
	{"purchase_failed", "commerce", "purchase_failed", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PurchaseFailed{PurchaseFailed: &causalityv1.PurchaseFailed{CartId: "c-1", ErrorCode: "declined"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PurchaseFailed{PurchaseFailed: &causalityv1.PurchaseFailed{}})
		}},
	{"app_start", "system", "app_start", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppStart{AppStart: &causalityv1.AppStart{IsColdStart: true, LaunchDurationMs: 800}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppStart{AppStart: &causalityv1.AppStart{}})
		}},
	{"app_background", "system", "app_background", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppBackground{AppBackground: &causalityv1.AppBackground{ForegroundDurationMs: 60000}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppBackground{AppBackground: &causalityv1.AppBackground{}})
		}},
	{"app_foreground", "system", "app_foreground", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppForeground{AppForeground: &causalityv1.AppForeground{ResumeScreen: "Home"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppForeground{AppForeground: &causalityv1.AppForeground{}})
		}},
	{"app_crash", "system", "app_crash", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppCrash{AppCrash: &causalityv1.AppCrash{CrashType: "SIGSEGV"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_AppCrash{AppCrash: &causalityv1.AppCrash{}})
		}},
	{"network_change", "system", "network_change", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_NetworkChange{NetworkChange: &causalityv1.NetworkChange{CurrentType: causalityv1.NetworkType_NETWORK_TYPE_WIFI}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_NetworkChange{NetworkChange: &causalityv1.NetworkChange{}})
		}},
	{"permission_request", "system", "permission_request", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PermissionRequest{PermissionRequest: &causalityv1.PermissionRequest{PermissionType: "camera"}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PermissionRequest{PermissionRequest: &causalityv1.PermissionRequest{}})
		}},
	{"permission_result", "system", "permission_result", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PermissionResult{PermissionResult: &causalityv1.PermissionResult{PermissionType: "camera", Status: causalityv1.PermissionStatus_PERMISSION_STATUS_GRANTED}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_PermissionResult{PermissionResult: &causalityv1.PermissionResult{}})
		}},
	{"memory_warning", "system", "memory_warning", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_MemoryWarning{MemoryWarning: &causalityv1.MemoryWarning{Level: causalityv1.MemoryWarningLevel_MEMORY_WARNING_LEVEL_LOW}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_MemoryWarning{MemoryWarning: &causalityv1.MemoryWarning{}})
		}},
	{"battery_change", "system", "battery_change", "",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_BatteryChange{BatteryChange: &causalityv1.BatteryChange{BatteryLevel: 15}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_BatteryChange{BatteryChange: &causalityv1.BatteryChange{}})
		}},
	{"custom_event", "custom", "level_complete", "event_name",
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{EventName: "level_complete", IntParams: map[string]int64{"score": 9}}})
		},
		func() *causalityv1.EventEnvelope {
			return envelope(&causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{}})
		}},
}

// envelope returns an envelope of app "shop", device "d-1" around payload p
// (an *causalityv1.EventEnvelope_X; the oneof's interface is unexported).
func envelope(p any) *causalityv1.EventEnvelope {
	e := &causalityv1.EventEnvelope{AppId: "shop", DeviceId: "d-1"}
	reflect.ValueOf(e).Elem().FieldByName("Payload").Set(reflect.ValueOf(p))
	return e
}

// fixture reads a file of testdata/events at the repository root.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureNames lists the files of testdata/events matching pattern.
func fixtureNames(t testing.TB, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", pattern))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures %s: %v", pattern, err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}
